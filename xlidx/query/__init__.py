"""Engine-neutral query planning and fusion, all pure: nothing here talks to a cluster.

* :mod:`~xlidx.query.plan`: the immutable :class:`~xlidx.query.plan.Query` builder and the
  plan it compiles to (the backends render it; :mod:`xlidx.search` runs it);
* :mod:`~xlidx.query.fusion`: min-max and reciprocal-rank fusion of ranked lists;
* :mod:`~xlidx.query.hybrid`: the default BM25/kNN weights of a plan and its fusion.
"""
