"""Hypothesis profiles for the property tests.

Each test sets its own `max_examples` (sized so the folder runs in well under a minute);
the profiles only change how a run is seeded and reported. Pick one with
`pytest --hypothesis-profile=ci`, or set HYPOTHESIS_PROFILE=ci in the environment.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=False, print_blob=True)
"""CI: a fresh random seed every run, and a failure prints the blob that replays it
(`@reproduce_failure`), since the example database does not survive the CI machine."""

if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
