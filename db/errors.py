class StoreError(Exception):
    """A store problem a user can act on (bad URL, newer schema, unknown campaign, ...);
    the message is one line."""


class CampaignExists(StoreError):
    """create_campaign: the name is taken."""


class CampaignBusy(StoreError):
    """A campaign is being written by another live process (or was taken over from this
    one): a second writer is refused."""
