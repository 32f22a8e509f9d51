"""Stand-in for modules/shared_state.py of AUTOMATIC1111 v1.10.1: ``State`` with the fields
ClipProbe and the stand-ins read or write, ``begin`` (resets them as 1.10 does), ``end`` and
``interrupt``.  ``history`` records ("begin", job) / ("end", job) in call order (stand-in
only)."""


class State:
    skipped = False
    interrupted = False
    stopping_generation = False
    job = ""
    job_no = 0
    job_count = 0
    sampling_step = 0
    sampling_steps = 0
    textinfo = None

    def __init__(self):
        self.history = []

    def interrupt(self):
        self.interrupted = True

    def begin(self, job: str = "(unknown)"):
        self.sampling_step = 0
        self.job_count = -1
        self.job_no = 0
        self.skipped = False
        self.interrupted = False
        self.stopping_generation = False
        self.textinfo = None
        self.job = job
        self.history.append(("begin", job))

    def end(self):
        self.history.append(("end", self.job))
        self.job = ""
        self.job_count = 0
