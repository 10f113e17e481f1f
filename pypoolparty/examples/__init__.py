"""Small programs that show pypoolparty at work: ``python -m pypoolparty.examples.pi``."""
