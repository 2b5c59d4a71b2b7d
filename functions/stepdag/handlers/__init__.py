"""AWS Lambda entry points.

``stepdag.handlers.node_runner.handler`` is the node-runner function every Task of a
compiled state machine invokes.  Nothing is imported here: the handler module's own
import cost is part of every cold start.
"""
