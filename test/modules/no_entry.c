/* A shared object that is not an mtahooks module: no ec_module_entry. */
__attribute__((visibility("default"))) int some_other_function(void);
int some_other_function(void) { return 42; }
