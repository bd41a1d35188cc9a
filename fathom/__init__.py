"""What the bot and the workers must agree on: settings, Redis keys and the job contract."""
