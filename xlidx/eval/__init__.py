"""Evaluation: read queries and qrels, run them through the engine, score the rankings,
compare two runs with a paired test, and render the HTML report.

ir-measures (over pytrec_eval) computes the metrics and ranx the paired tests; they are
imported only when scoring, so ``xlidx --help`` stays light. The workflows that use this
package (``Index.evaluate``, the migration gate) live in :mod:`xlidx.workflows`.
"""

from xlidx.eval.choices import Side, parse_compare
from xlidx.eval.data import EvalQuery, Qrels, check_qrels, read_qrels, read_queries
from xlidx.eval.evaluation import Evaluation
from xlidx.eval.harness import EvalOptions, ModeReport, encode_queries, run_eval
from xlidx.eval.metrics import MEASURES, evaluate, read_trec_run, write_trec_run

__all__ = [
    "MEASURES",
    "EvalOptions",
    "EvalQuery",
    "Evaluation",
    "ModeReport",
    "Qrels",
    "Side",
    "check_qrels",
    "encode_queries",
    "evaluate",
    "parse_compare",
    "read_qrels",
    "read_queries",
    "read_trec_run",
    "run_eval",
    "write_trec_run",
]
