"""Energy-sharing settlement (pure): who shared how much with whom, exactly, per quarter-hour.

Values in, statements out; no clock, no I/O. The pieces, in the order data flows:

* :mod:`.model` — community, memberships (join/leave, participation factor), key periods,
  tariffs, metered member intervals, the inputs of a run;
* :mod:`.validate` — bad input refused before anything is computed (names member, interval,
  field); :func:`.validate.validate_participation` across communities (≤ 5, Σ ≤ 100 %);
* :mod:`.keys` — the keys of DOMAIN.md §2 (AT static/dynamic, DE §42b constant/proportional,
  DE §42c contract key with optional re-offer);
* :mod:`.apportion` — the one remainder rule (largest remainder, ties by member id);
* :mod:`.allocate` — exact allocation: one quarter-hour on ints, or many on int64 arrays
  (:func:`.allocate.allocate_bulk`, the path for a community-year);
* :mod:`.explain` — quota, rounding, cap and re-offer per member, for a member's question;
* :mod:`.statement`, :mod:`.settle` — statement lines with money (exact Decimal, one rounding
  rule) and CO₂; :mod:`.balances` — daily/monthly per member and community;
* :mod:`.runs` — versioned, append-only runs, restatements with the difference;
* :mod:`.csv_export` — CSV with units in the header; :mod:`.mieterstrom` — §42a sum-meter model.

Energy is whole Wh everywhere: for every quarter-hour ``Σ allocated + surplus = generation``
and ``0 ≤ allocated ≤ consumption`` hold exactly.
"""
