"""Notification channels: e-mail over SMTP (email.py, from templates/) and signed webhooks
(webhooks.py); channels.py picks one by a delivery's channel name."""
