"""The LRU and its per-CPU add batches, after mm/swap.c (lru_cache_add / folio_add_lru,
lru_add_drain, lru_add_drain_all: a batch holds a reference until drained) and
mm/vmscan.c / mm/migrate.c (isolate_lru_page = folio_isolate_lru, putback_lru_page).

lru_add_drain_all() is work other CPUs must run: it queues lru_add_drain_per_cpu on every
CPU whose batch is not empty (cpu_needs_drain) and sleeps in flush_work() until each has
run. A CPU runs its kworker at its next schedule point; one that spins in the kernel
without one (do_swap_page's device-private trylock retried by hmm_range_fault, between
1afaeb8293c9 and b570f37a2ce4) never does, and the drain never completes. A spinning actor
registers itself here (``spin``), so the drain can tell a busy CPU from a free one and the
scheduler can tell a livelock from a deadlock.
"""
from __future__ import annotations

from .state import Page, Wait


class Lru:
    """Kernel's LRU (swap.c, vmscan.c) and the per-CPU work of lru_add_drain_all."""

    # The scenario's actors (scenario.build sets them): which CPU each runs on, and
    # whether it has finished. Empty for a Kernel built without actors.
    actors: tuple = ()
    # actor name -> (site, preemptible) while the actor spins: retries a failed trylock
    # until what it read changes. Created on first use (state.py's Kernel.__init__ is
    # shared by every mechanism; this table is the LRU drain's and the fault's business).
    _spinning: dict | None = None
    # __lru_add_drain_all's static mutex and lru_drain_gen (set per instance when taken)
    _drain_owner: str | None = None
    _drain_gen: int = 0

    def lru_cache_add(self, page: Page, site: str) -> None:
        """Put a page in this CPU's LRU-add batch (the batch holds a reference)."""
        cpu = self.cur.cpu if self.cur is not None else 0
        self.get(page, "batch", site)
        page.batch_cpu = cpu
        batch = self.batches[cpu]
        batch.append(page)
        if len(batch) >= 15:           # PAGEVEC_SIZE: a full batch drains itself
            self.lru_add_drain(cpu)

    def lru_add_drain(self, cpu: int) -> None:
        batch = self.batches[cpu]
        self.batches[cpu] = []
        for page in batch:
            page.batch_cpu = None
            page.lru = True
            self.put(page, "batch", "lru_add_drain")

    def lru_add_drain_all(self) -> None:
        """Every batch at once: for callers with no CPU of their own (the scenario's setup,
        the end-state oracle). Actors call ``lru_add_drain_all_work``."""
        for cpu in range(len(self.batches)):
            self.lru_add_drain(cpu)

    # ---- lru_add_drain_all as per-CPU work ---------------------------------------------
    def spin(self, actor, site: str, preemptible: bool) -> None:
        """``actor`` starts spinning at ``site``. A preemptible spin (a user access refaulting,
        GUP's loop with its cond_resched) leaves the CPU free for kworkers; a
        non-preemptible one (hmm_range_fault's walk retried without a schedule point)
        does not."""
        if self._spinning is None:
            self._spinning = {}
        self._spinning[actor.name] = (site, preemptible)

    def unspin(self, actor) -> None:
        if self._spinning:
            self._spinning.pop(actor.name, None)

    def spinning(self, name: str) -> bool:
        return bool(self._spinning) and name in self._spinning

    def cpu_busy(self, cpu: int) -> list[str]:
        """The actors on ``cpu`` that keep its kworker from running: those spinning with
        no schedule point. Everything else reaches one (a sleep, a return to user space,
        the end of its program, a cond_resched) and lets the queued work run: the model
        treats kernel code between two of its steps as preemptible, as
        PREEMPT_VOLUNTARY's might_sleep points make it in practice. (A CPU holding a
        spinlock cannot run it either, but the PTL holder never waits for the drainer,
        so that would only delay the drain by a few steps: not modelled.)"""
        if not self._spinning:
            return []
        return [a.name for a in self.actors
                if a.cpu == cpu and not a.done and a.name in self._spinning
                and not self._spinning[a.name][1]]

    def _run_drain_work(self, pending: list[int]) -> bool:
        """The queued lru_add_drain_per_cpu items run on every CPU of ``pending`` that is
        free now; True once none is left (flush_work returns)."""
        for cpu in list(pending):
            if not self.cpu_busy(cpu):
                who = self.who
                self.who = "kworker/%d" % cpu      # the audit log names the kworker
                self.lru_add_drain(cpu)
                self.who = who
                pending.remove(cpu)
        return not pending

    def lru_add_drain_all_work(self, site: str):
        """lru_add_drain_all() called by an actor (__lru_add_drain_all in mm/swap.c): under
        the drain mutex, queue the drain on every CPU whose batch is not empty and wait
        until each has run it. The caller's own CPU runs its part while the caller sleeps
        in flush_work; another CPU at once unless it is spinning without a schedule point,
        else when it stops. Blocked, the caller waits on a Wait named for the CPUs that
        have not run their part (the hang oracle prints its site). A second caller sleeps
        on the mutex and, if a whole drain began and ended meanwhile (lru_drain_gen moved
        since it looked), returns without draining again."""
        own = self.cur.cpu if self.cur is not None else None
        self.branch(site)
        this_gen = self._drain_gen
        if self._drain_owner is not None:
            self.branch(site + ":mutex_wait")
            yield Wait(site, ("lru_drain", "mutex"), lambda: self._drain_owner is None,
                       lambda: [self._drain_owner], "lru_add_drain_all mutex")
            if this_gen != self._drain_gen:
                self.branch(site + ":drained_by_other")
                return
        self._drain_owner = self.who
        self._drain_gen += 1
        pending = []
        for cpu in range(len(self.batches)):
            if not self.batches[cpu]:
                continue                   # cpu_needs_drain(): nothing queued there
            if cpu == own or not self.cpu_busy(cpu):
                self.lru_add_drain(cpu)
            else:
                pending.append(cpu)
        if pending:
            self.branch(site + ":wait_other_cpu")
            yield Wait(site, ("cpu", pending[0]), lambda: self._run_drain_work(pending),
                       lambda: [n for cpu in pending for n in self.cpu_busy(cpu)],
                       "lru_add_drain_all work on CPU %s" % ",".join(map(str, pending)))
        self._drain_owner = None

    # ---- isolation ------------------------------------------------------------------
    def isolate_lru_page(self, page: Page, site: str) -> bool:
        """TestClearPageLRU plus an isolation reference; fails if not on the LRU."""
        if page.free:
            self.use_after_free(page, site, "isolate_lru_page")
            return False
        if not page.lru:
            self.branch(site + ":busy", page)
            return False
        page.lru = False
        page.isolated = True
        self.get(page, "isolate", site)
        return True

    def putback_lru_page(self, page: Page, site: str, owner: str = "isolate") -> None:
        """putback_lru_page(): back to the LRU (through the batch) and drop the caller's
        reference (the isolation reference, or the driver's for a new page)."""
        self.lru_cache_add(page, site)
        self.put(page, owner, site)
