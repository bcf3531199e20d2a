# scripts run in their own processes by test_scale_out.py, not test modules
collect_ignore = ["_four_devices.py", "_two_process.py", "_kill_run.py"]
