"""Development tools shared by tests and benchmarks; production code never imports them."""
