"""The `warroom` command: server, worker and client in one program."""
