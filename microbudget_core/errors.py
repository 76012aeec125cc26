"""The one exception type users see: what was wrong and what to do about it."""


class MicrobudgetError(Exception):
    """A problem with the user's input or environment, phrased for the user.

    The CLI prints it as one line and exits with code 2; the app shows it in one
    error box. Anything else escaping the core is a bug.
    """

    def __init__(self, problem: str, fix: str = ""):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} {fix}".strip())
