"""The results: the Parquet store and what is computed from its rows when they are read.

``store`` writes and reads rows and summaries, ``keys`` holds what the rows share with the attack
package (the union's name, the attacks' order, the union row key), ``metrics`` defines the paper's
and TextAttack's numbers, ``uncertainty`` their confidence intervals and paired differences,
``union`` the worst case over several attacks. This package imports no ``attack_workers.attack``,
``runtime``, ``tune`` or ``analysis`` (the tables, plots and the HTML page: docs/attacks.md#modules-and-tests).
"""
