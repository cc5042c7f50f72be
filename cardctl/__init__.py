"""cardctl: administer social-security / medical-insurance cards and their PINs."""

__version__ = "0.1.0"
