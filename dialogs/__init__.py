"""The dialog state machine: pure functions from (session, understood message) to replies."""
