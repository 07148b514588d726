DROP INDEX changes_device;
DROP TABLE conflicts;
DROP TABLE device_ops;
DROP TABLE devices;
