"""The public status page: component states and public incident updates."""
