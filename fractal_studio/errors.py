"""Errors a user can cause. They carry a message written for the user, never a traceback."""


class UserError(Exception):
    """Bad input from the user (file, option, request); the message says what is wrong and what to do."""


class ModelFileError(UserError):
    """A weights file that cannot be read, is corrupt, or does not match its configuration."""


class UnknownModel(UserError):
    """A checkpoint that does not name a published preset: the user must say which model it is."""


class TooLarge(UserError):
    """An input over one of the size limits (pixels, sides, bytes): the server answers 413."""
