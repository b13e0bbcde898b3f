// CMaskCount is its header (include/mask_count.h); SwiftPM wants a source file in every C target.
#include "mask_count.h"
