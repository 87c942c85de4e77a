"""The Pulumi program (``main: infra/`` in Pulumi.yaml): ``__main__.py`` lists what it declares.

Modules are imported as ``infra.<module>``: Pulumi runs this folder as a script, and the
project's editable install makes the package importable by that name from anywhere, so the
tests import exactly the modules ``pulumi up`` runs.
"""
