"""Energy-sharing settlement (pure): who shared how much with whom, exactly, per quarter-hour.

Values in, statements out; no clock, no I/O. The pieces, in the order data flows:

* :mod:`.model` — community, memberships (join/leave, participation factor), key periods,
  tariffs, metered member intervals, the inputs of a run;
* :mod:`.validate` — bad input refused before anything is computed (names member, interval,
  field); :func:`.validate.validate_participation` across communities (≤ 5, Σ ≤ 100 %);
* :mod:`.keys` — the keys of docs/domain.md §2 (AT static/dynamic, DE §42b constant/proportional,
  DE §42c contract key with optional re-offer);
* :mod:`.apportion` — the one remainder rule (largest remainder, ties by member id);
* :mod:`.allocate` — exact allocation: one quarter-hour on ints (the reference), or many on
  int64 arrays (:func:`.allocate.allocate_bulk`, the path every run takes);
* :mod:`.explain` — quota, rounding, cap and re-offer per member, for a member's question;
* :mod:`.statement`, :mod:`.settle` — statement lines with money (exact Decimal, one rounding
  rule) and CO₂, the key in force per stretch of quarter-hours;
* :mod:`.runs` — versioned runs of a local day: provisional and final versions, no version for
  unchanged inputs, restatements with what changed per member, the members' statements;
* :mod:`.balances` — a member's metered and settled figures per quarter-hour, local day or
  month; :mod:`.csv_export` — that view as CSV with units in the header;
* :mod:`.mieterstrom` — §42a sum-meter model.

Energy is whole Wh everywhere: for every quarter-hour ``Σ allocated + surplus = generation``
and ``0 ≤ allocated ≤ consumption`` hold exactly.
"""
