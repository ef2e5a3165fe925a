"""One exception type per failure family. Messages are written for a GIS analyst and fit on one line."""


class PromptMIDError(Exception):
    """Base class: anything the CLI/plugin should show as a one-line message instead of a traceback."""


class InputError(PromptMIDError):
    """An input raster cannot be used (unreadable, no overlap, nodata-only, wrong CRS...)."""


class RegistrationError(PromptMIDError):
    """The images were read but could not be matched (too few reliable tie points)."""


class UncertainError(RegistrationError):
    """The images were matched, but the evidence is too weak to claim the result: nothing was written."""


class ModelMissingError(PromptMIDError):
    """Weights or model files needed by the chosen engine are absent or corrupt."""


class OutputError(PromptMIDError):
    """An output cannot be written (read-only folder, disk full, existing file locked)."""


class CancelledError(PromptMIDError):
    """The user cancelled the run; partial outputs have been removed."""
