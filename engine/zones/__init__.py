"""Russian mobile numbers' regions and time zones, from the public numbering registry."""
