DROP TABLE sync_horizon;
DROP INDEX changes_device;
DROP INDEX conflicts_entity_open;
DROP TABLE conflicts;
DROP TABLE device_ops;
DROP TABLE devices;
