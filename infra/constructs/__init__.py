"""One construct per concern: storage, node-runner functions, workflows, observability."""
