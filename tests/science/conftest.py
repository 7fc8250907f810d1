"""The science lake fixtures (tests/science/fixtures.py) for the report, export and schedule tests."""

from science.fixtures import science_lake, science_world  # noqa: F401 - fixtures
