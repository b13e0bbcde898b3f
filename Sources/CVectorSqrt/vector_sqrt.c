// CVectorSqrt is its header (include/vector_sqrt.h); SwiftPM wants a source file in every C target.
#include "vector_sqrt.h"
