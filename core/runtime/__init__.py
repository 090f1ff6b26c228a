"""What every room stands on: errors, settings and policy, paths, logs, locks, the network guard, process priority and limits, worker processes, hashing."""
