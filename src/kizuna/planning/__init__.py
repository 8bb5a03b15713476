"""Planning studies: a trace replayed under several policies and cluster sizes, and reports.

`specs` reads the cluster and awards files a planner writes, `study` runs the replays and
`report` turns their results into one self-contained HTML page (import it from
`kizuna.planning.report`: it loads matplotlib, which every other command can do without).
"""

from kizuna.planning.specs import cluster_for_load, load_awards, load_cluster, nodes_for_load
from kizuna.planning.study import Row, Study, StudyResult

__all__ = [
    "Row",
    "Study",
    "StudyResult",
    "cluster_for_load",
    "load_awards",
    "load_cluster",
    "nodes_for_load",
]
