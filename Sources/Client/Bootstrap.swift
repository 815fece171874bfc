// placeholder for bootstrap build
