"""Everything that is not shipped to Cloud Functions: the local stack, migrations, packaging and evaluation tools."""
