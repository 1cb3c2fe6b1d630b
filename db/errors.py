class StoreError(Exception):
    """A store problem a user can act on (bad URL, newer schema, unknown campaign, ...);
    the message is one line."""
