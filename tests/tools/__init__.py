"""Tools the tests obtain themselves (CI installs nothing by hand)."""
