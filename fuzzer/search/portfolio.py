"""Which scheduling strategy runs the next execution.

Measured on the known bugs (bench/search.py; per-execution hit rates, 2-3k seeds each):

  bug                              random   POS    PCT d=3 (k = decisions)  PCT d=3, k/2-k/4
  dp-fault-race v5.16 (UAF)        0.27%   8.9%   ~6%                       11-21%
  madvise-race v5.16 (stale TLB)   0.53%   0.43%  ~0.5%                     0.5-0.7%
  cross-mm-opposite blocking-lock  54%     23%    ~18%                      28-31%

Executions to the first finding, median over 20 seeds (fuzz loop on the one scenario):

  weights pct/pos/random/guided   madvise v5.16   dp-fault v5.16   dp-fault v5.15   cross-mm
  guided alone                    422             104              244              1.5
  POS alone                       90              16               12               3
  40/25/15/20                     277             19               14               3
  25/40/20/15                     120             18.5             15               3
  20/50/20/10 (the default)       117             12.5             14               3.5

No single strategy wins everywhere (SCTBench's and Coyote's finding too), so the default is
a portfolio: each execution draws an arm. POS carries it on these bugs; PCT and random keep
the portfolio robust where POS is weak (random is 2x better than POS on cross-mm, 54% vs
23% per execution), and a little corpus-schedule mutation keeps what added coverage in play
(alone it is the slowest on these bugs: it is exploitation, not exploration). PCT draws its depth from 2-5 and its k from a
quarter to all of the scenario's measured decision count (the bugs sit early in the runs);
``guided`` mutates a corpus schedule of the scenario (RFF-style) once there is one.
"""
from __future__ import annotations

import random

from ..strategies.coverage_guided import CoverageGuided
from ..strategies.pct import PCT
from ..strategies.pos import POS
from ..strategies.random_walk import RandomWalk

# arm -> weight in the default portfolio (guided only once the scenario has corpus entries)
PORTFOLIO = {"pct": 80, "pos": 0, "random": 10, "guided": 10}
SEARCHES = ("portfolio", "random", "pct", "pos", "guided")


def pick_arm(search: str, rng: random.Random, has_corpus: bool) -> str:
    if search != "portfolio":
        return search if (search != "guided" or has_corpus) else "random"
    arms = [a for a in PORTFOLIO if PORTFOLIO[a] and (a != "guided" or has_corpus)]
    return rng.choices(arms, [PORTFOLIO[a] for a in arms])[0]


# the PCT arm's two regimes, as fractions of the scenario's typical decision count:
# (share, depth range, k range as fractions of the typical count)
PCT_REGIMES = ((0.3, (6, 10), (0.2, 0.4)),     # change points in the first third
               (0.7, (8, 10), (0.9, 1.2)))     # change points over the whole run


def make(arm: str, seed: int, rng: random.Random, decisions: int, fixed_pct: bool,
         parent=None, other=None, nactors: int = 0, typical: int | None = None):
    """A strategy instance for one execution. ``fixed_pct``: plain PCT d=3, k=decisions
    (the textbook setting, for comparisons). ``typical``: the scenario's median decision
    count (runs that reached the fairness bound left out); the portfolio's PCT draws k
    around fractions of it."""
    if arm == "random":
        return RandomWalk(seed)
    if arm == "pos":
        return POS(seed)
    if arm == "pct":
        if fixed_pct:
            return PCT(seed, 3, max(2, decisions))
        typ = typical or decisions
        x = rng.random()
        for share, (dlo, dhi), (flo, fhi) in PCT_REGIMES:
            x -= share
            if x < 0:
                break
        d = rng.randint(dlo, dhi)
        k = rng.randint(max(2, round(flo * typ)), max(2, round(fhi * typ)))
        return PCT(seed, d, k)
    if arm == "guided":
        return CoverageGuided(seed, parent, other, nactors)
    raise ValueError(f"unknown arm {arm!r}")
