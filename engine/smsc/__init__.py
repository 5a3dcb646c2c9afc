"""The SMSC simulator behind `volley smsc`: a trio SMPP server on the sans-IO session."""
