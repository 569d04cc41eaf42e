"""Channels (SMTP, chat webhooks, signed webhooks) and the delivery log."""
