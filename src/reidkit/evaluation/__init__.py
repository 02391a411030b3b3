"""Evaluation on numpy arrays: distances, rank metrics, ROC, AQE, re-ranking."""

from .distance import pairwise_distance
from .evaluator import evaluate, format_comparison, format_table, load_features
from .query_expansion import average_query_expansion
from .rank import RankResult, evaluate_rank, evaluate_rank_cuhk03
from .rerank import k_reciprocal_rerank, re_ranking
from .roc import evaluate_roc, roc_curve

__all__ = ["pairwise_distance", "evaluate", "format_comparison", "format_table", "load_features", "average_query_expansion",
           "RankResult", "evaluate_rank", "evaluate_rank_cuhk03", "k_reciprocal_rerank", "re_ranking",
           "evaluate_roc", "roc_curve"]
