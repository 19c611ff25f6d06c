"""Local stack, migrations, packaging, benchmarks and stand-ins: everything that is not shipped inside a function."""
