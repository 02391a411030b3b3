"""Pictures of results: rank lists, ROC curves, distance histograms and a self-contained HTML report."""

from .figures import RankedItem, distance_histogram_png, rank_list_png, roc_png
from .report import query_order, ranked_gallery, write_visualization

__all__ = ["RankedItem", "distance_histogram_png", "rank_list_png", "roc_png", "query_order", "ranked_gallery",
           "write_visualization"]
