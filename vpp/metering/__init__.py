"""Metered intervals (pure): energy-register readings → quarter-hour energies with quality.

:mod:`.registers` holds the readings and meter exchanges; :mod:`.plausibility` judges a
register's steps (it only grows, across recorded exchanges and its wrap, no faster than the
device's rating; a fall is never a reset); :mod:`.intervals` turns one register into exact
quarter-hour energies (implausible readings left out, gaps interpolated and marked L2; L3
estimates where no reading brackets a quarter-hour); :mod:`.member` combines a
member's import/export/PV channels into the settlement's
:class:`vpp.settlement.model.MemberInterval`; :mod:`.quality` has the L1/L2/L3 flags.
"""
