import sys

if sys.argv[1:2] == ["quality"]:
    from benchmarks.quality import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["batch-stops"]:
    from benchmarks.batch_stops import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["findings"]:
    from benchmarks.findings import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["judged-set"]:
    from benchmarks.judged_set import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["measures"]:
    from benchmarks.measures import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["load"]:
    from benchmarks.load import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["levers"]:
    from benchmarks.levers import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["estimate"]:
    from benchmarks.estimate import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["crowd"]:
    from benchmarks.crowd import main

    raise SystemExit(main(sys.argv[2:]))

if sys.argv[1:2] == ["startup"]:
    from benchmarks.startup import main

    raise SystemExit(main(sys.argv[2:]))

from benchmarks.runner import main  # noqa: E402

raise SystemExit(main())
