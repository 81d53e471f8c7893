"""The service over Temporal: incidents reported, actions run as Updates (queued per workflow,
sightings merged), states read. The API, the console, the demo and the tests call it."""
