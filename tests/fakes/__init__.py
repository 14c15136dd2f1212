"""Real-socket stand-ins for the world around the gateway: a fake upstream and a live gunicorn server."""
