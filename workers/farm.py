"""The farm: ``FuzzWorker`` actors on Ray driven by one ``Coordinator``.

One call per batch per worker, one batch in flight per worker: when a batch comes back the
worker's next one is sent first (with what the hub gathered since its last call), then the
report is absorbed, so a worker waits only for the call's round trip. Admitted batches are
written through the store at most every ``flush_interval`` seconds, all of them in one
transaction. New buckets are minimized by Ray tasks while the campaign runs.

Faults:
- an actor that dies (SIGKILL, out of memory, its node removed) is restarted by Ray
  (``max_restarts``) and the call it was running is re-sent (``max_task_retries``); the
  fresh actor answers "restarted" and the coordinator sends that batch again with the whole
  hub state. Executions of a batch that never came back are not counted.
- a worker that runs out of restarts is dropped; its share of the budget goes to the
  others; if none are left the campaign ends with one line (``FarmError``).
- a finding is a crash row keyed by (campaign, input hash, signature): a re-run batch that
  finds it again adds nothing, and bug counts count rows.
- ``stop()`` turning true (SIGTERM, Ctrl-C): no new batches; the ones in flight are waited
  for (``drain_timeout``), absorbed and written.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from migfuzz.fuzzer.search.campaign import minimize_input
from migfuzz.fuzzer.search.loop import FuzzConfig

from .coordinator import Coordinator
from .runtime import FarmError
from .worker import FuzzWorker


@dataclass
class FarmOptions:
    workers: int
    batch: int = 250               # executions per call (~0.1 s; see bench/results/farm.md)
    max_restarts: int = 3
    max_task_retries: int = 3
    max_resends: int = 100         # a batch whose worker is unreachable: re-sent this often
    flush_interval: float = 1.0    # seconds between store transactions, at least (it
                                   # grows with the store's load: Coordinator.flush)
    minimize: bool = True
    minimize_budget: int = 2000
    drain_timeout: float = 60.0
    spread: bool = True            # SPREAD the actors over the nodes


def _one_line(e: BaseException) -> str:
    """One short line for a Ray error: the exception a task raised (its last line), or
    the first sentence of Ray's own message."""
    cause = getattr(e, "cause", None)
    if cause is not None and cause is not e:
        lines = str(cause).strip().splitlines()
        return f"{type(cause).__name__}: {lines[-1] if lines else ''}"[:200]
    text = [t.strip() for t in str(e).strip().splitlines() if t.strip()]
    line = text[0] if text else type(e).__name__
    line = line.split(". ")[0].rstrip(".")
    return f"{type(e).__name__}: {line}"[:200]


class Farm:
    def __init__(self, ray, config: FuzzConfig, seed: int, opts: FarmOptions,
                 coordinator: Coordinator, recorder=None,
                 log: Callable[[str], None] | None = None):
        if opts.workers < 1:
            raise FarmError("a farm needs at least one worker")
        self.ray = ray
        self.config = config
        self.seed = seed
        self.opts = opts
        self.coord = coordinator
        coordinator.min_flush_interval = coordinator.flush_interval = opts.flush_interval
        self.recorder = recorder
        self.log = log or (lambda _m: None)
        self.minimize_executions = 0
        self._min_refs: dict = {}          # ref -> signature
        self.stopped = False
        self.seconds = 0.0
        self._check_capacity()
        remote = ray.remote(FuzzWorker).options(
            num_cpus=1, max_restarts=opts.max_restarts,
            max_task_retries=opts.max_task_retries,
            scheduling_strategy="SPREAD" if opts.spread else "DEFAULT")
        self.actors = [remote.remote(config, seed, i) for i in range(opts.workers)]
        self._minimize = ray.remote(num_cpus=1, max_retries=3)(minimize_input)

    def _check_capacity(self) -> None:
        cpus = self.ray.cluster_resources().get("CPU", 0)
        if cpus < self.opts.workers:
            raise FarmError(f"--workers {self.opts.workers} needs {self.opts.workers} CPUs "
                            f"but the Ray cluster has {cpus:g}; add nodes or ask for fewer "
                            f"workers")

    # ---------------------------------------------------------------- the loop
    def run(self, execs: int | None = None, duration: float | None = None,
            stop: Callable[[], bool] = lambda: False,
            progress: Callable[[dict], None] | None = None) -> None:
        """Run ``execs`` more executions in all (or for ``duration`` seconds), until
        ``stop()``. Raises FarmError for what a user must fix or cannot get past."""
        ray = self.ray
        from ray.exceptions import ActorDiedError, RayError, RayTaskError
        coord, opts = self.coord, self.opts
        t0 = time.monotonic()
        deadline = t0 + duration if duration is not None else None
        if execs is None and duration is None:
            raise ValueError("run() needs execs or duration")
        inflight: dict = {}               # ref -> (worker index, seq, n)
        seqs = [0] * opts.workers
        full = [True] * opts.workers      # the first call carries the stored hub state
        retries = [0] * opts.workers
        last_flush = time.monotonic()
        drain_until = None

        assigned = [0]                    # executions sent out, less those given up

        def budget_left() -> int:
            return (1 << 30) if execs is None else execs - assigned[0]

        def submit(i: int, n: int | None = None) -> None:
            """Send worker i its next batch (``n`` given: re-send a lost batch)."""
            if n is None:
                left = budget_left()
                if self.stopped or left <= 0 or (deadline and time.monotonic() >= deadline):
                    return
                n = min(opts.batch, left)
                assigned[0] += n
            sync = coord.sync_for(i, full=full[i])
            ref = self.actors[i].run_batch.remote(seqs[i], n, sync, full[i])
            inflight[ref] = (i, seqs[i], n)

        for i in range(opts.workers):
            submit(i)
        try:
            while inflight:
                try:
                    ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.25)
                    if not self.stopped and stop():
                        self._begin_stop()
                except KeyboardInterrupt:
                    if self.stopped:
                        raise
                    self._begin_stop()
                    continue
                if self.stopped and drain_until is None:
                    drain_until = time.monotonic() + opts.drain_timeout
                if drain_until is not None and time.monotonic() > drain_until:
                    self.log(f"gave up waiting for {len(inflight)} batch(es) in flight")
                    break
                for ref in ready:
                    i, seq, n = inflight.pop(ref)
                    w = coord.workers[i]
                    try:
                        out = ray.get(ref)
                    except RayTaskError as e:
                        raise FarmError(f"worker {w.name} failed: {_one_line(e)}") from None
                    except RayError as e:
                        # ActorDiedError: Ray gave up restarting it. Anything else (the
                        # actor unreachable while its node is being declared dead, an
                        # object lost with its node) is re-sent, for a while
                        retries[i] += 1
                        if isinstance(e, ActorDiedError) or retries[i] > opts.max_resends:
                            w.failed = True
                            assigned[0] -= n
                            self.log(f"worker {w.name} lost for good: {_one_line(e)}")
                            if all(x.failed for x in coord.workers):
                                raise FarmError(f"every worker died; the last: "
                                                f"{_one_line(e)}") from None
                            # its budget goes back to the others
                            for j in range(opts.workers):
                                if not coord.workers[j].failed and not any(
                                        v[0] == j for v in inflight.values()):
                                    submit(j)
                            continue
                        full[i] = True
                        if self.stopped:
                            assigned[0] -= n
                            continue
                        self.log(f"worker {w.name}: {_one_line(e)}; re-sending its batch")
                        time.sleep(min(2.0, 0.1 * retries[i]))
                        submit(i, n)
                        continue
                    if out.get("restarted"):
                        w.restarts += 1
                        full[i] = True
                        w.pid, w.node = out["pid"], out["node"]
                        if self.stopped:
                            assigned[0] -= n
                            continue       # stopping: its lost batch is not re-run
                        self.log(f"worker {w.name} restarted (pid {out['pid']}); "
                                 f"re-running its batch {seq}")
                        submit(i, n)
                        continue
                    full[i] = False
                    retries[i] = 0
                    seqs[i] = seq + 1
                    w.pid, w.node = out["pid"], out["node"]
                    submit(i)                 # keep the worker busy while we absorb
                    for b in coord.absorb(i, out["report"], hits=out.get("hits")):
                        self._minimize_bucket(b)
                now = time.monotonic()
                if now - last_flush >= coord.flush_interval:
                    self._flush()
                    last_flush = now
                if progress:
                    progress(coord.status(now - t0, now))
        finally:
            self.seconds = time.monotonic() - t0
            try:
                self._flush()
            finally:
                if self.stopped:
                    for ref in self._min_refs:
                        ray.cancel(ref, force=False)
                    self._min_refs.clear()

    def _begin_stop(self) -> None:
        self.stopped = True
        self.log("stopping: waiting for the batches in flight")

    def _flush(self) -> None:
        try:
            self.coord.flush(self.recorder)
        except Exception as e:       # noqa: BLE001 - one line for the user, data kept
            raise FarmError(f"writing to the store failed: {_one_line(e)}") from None

    # ---------------------------------------------------------------- minimization
    def _minimize_bucket(self, b) -> None:
        if not self.opts.minimize or b.kind == "POTENTIAL_DEADLOCK" or b.input is None:
            return
        ref = self._minimize.remote(b.input, b.signatures[0], self.opts.minimize_budget)
        self._min_refs[ref] = b.signature

    def finish_minimizing(self, timeout: float | None = None) -> int:
        """Wait for the minimization tasks; put their results on the buckets. The worker
        actors are ended first: their CPUs go to the tasks still queued."""
        ray = self.ray
        from ray.exceptions import RayError
        self.shutdown()
        refs = list(self._min_refs)
        if not refs:
            return 0
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        buckets = self.coord.buckets
        for ref in done:
            sig = self._min_refs.pop(ref)
            try:
                out = ray.get(ref)
            except RayError as e:
                self.log(f"minimizing {sig} failed: {_one_line(e)}")
                continue
            b = buckets.buckets.get(buckets.find(sig))
            if b is not None and b.minimized is None:
                b.minimized = out["minimized"]
            self.minimize_executions += out["executions"]
        for ref in list(self._min_refs):
            ray.cancel(ref, force=False)
        self._min_refs.clear()
        return self.minimize_executions

    def shutdown(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:        # noqa: BLE001 - already gone
                pass


def run_campaign(ray, campaign, opts: FarmOptions, *, recorder=None, hub: dict | None = None,
                 prior_workers: dict | None = None, base: int = 0,
                 execs: int | None = None, duration: float | None = None,
                 stop: Callable[[], bool] = lambda: False,
                 progress: Callable[[dict], None] | None = None,
                 log: Callable[[str], None] | None = None,
                 on_farm: Callable[[Farm], None] | None = None):
    """Run a farm for ``campaign`` (a ``fuzzer.search.campaign.Campaign``: its config, its
    loop's seed and variant; ``hub``: what an earlier session stored, ``base``: its
    executions). Returns (CampaignResult, stopped, farm)."""
    from migfuzz.fuzzer.search.campaign import CampaignResult
    loop = campaign.loop
    t0 = time.monotonic()
    coord = Coordinator(campaign.config, opts.workers, variant=loop.variant, **(hub or {}),
                        bases=prior_workers, base_executions=base,
                        full_after=(recorder.store.max_crashes_per_bug
                                    if recorder is not None else 100))
    if recorder is not None:
        recorder.scenario_of = coord.scenario_of
    farm = Farm(ray, campaign.config, loop.seed, opts, coord, recorder, log=log)
    if on_farm:
        on_farm(farm)
    try:
        farm.run(execs=execs, duration=duration, stop=stop, progress=progress)
        if not farm.stopped and opts.minimize and len(coord.buckets):
            if log:
                log(f"minimizing {len(coord.buckets)} bug(s)...")
            farm.finish_minimizing()
    finally:
        farm.shutdown()
    cfg = {"variant": loop.variant, "search": campaign.config.search,
           "generate": campaign.config.generate,
           "scenarios": [sc["name"] for sc in campaign.config.scenarios],
           "workers": opts.workers}
    res = CampaignResult(cfg, campaign.seed, coord.total_executions(),
                         time.monotonic() - t0, coord.stats(farm.seconds),
                         list(coord.buckets), coord.corpus, farm.minimize_executions)
    return res, farm.stopped, farm
