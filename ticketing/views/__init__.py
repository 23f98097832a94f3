"""Web pages of the ticketing app: the department workbench, the supervisor board, the agents' callback
list. Pages read through selectors and write through the REST API (which calls the services)."""
