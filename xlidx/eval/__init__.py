"""Evaluation: read queries and qrels, run them through the engine, score the rankings.

ir-measures (over pytrec_eval) computes the metrics; it is imported only when scoring, so
``xlidx --help`` stays light.
"""

from xlidx.eval.data import EvalQuery, Qrels, check_qrels, read_qrels, read_queries
from xlidx.eval.harness import EvalOptions, ModeReport, encode_queries, run_eval
from xlidx.eval.metrics import MEASURES, evaluate, read_trec_run, write_trec_run

__all__ = [
    "MEASURES",
    "EvalOptions",
    "EvalQuery",
    "ModeReport",
    "Qrels",
    "check_qrels",
    "encode_queries",
    "evaluate",
    "read_qrels",
    "read_queries",
    "read_trec_run",
    "run_eval",
    "write_trec_run",
]
