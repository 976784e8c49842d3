"""Stage 6, the runner: the `ganet` command line (`cli`), the headless notebook run behind
`./run_all.sh` (`pipeline`, `processes`), the learning checks that stop or report (`checks`), and
the run's report and results files (`report`, `results`). Nothing below it imports it.
"""
