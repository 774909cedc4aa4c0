"""The results: the Parquet store, the metric definitions, their intervals and the HTML report.

``store`` writes and reads rows and summaries, ``metrics`` defines the paper's and TextAttack's
numbers, ``uncertainty`` their confidence intervals and paired differences, ``report`` the page.
"""
