// Everything about MIL blob storage files (weight.bin): dtypes, sub-byte packing, reader, writer.
#pragma once
#include "dtype.h"
#include "storage_format.h"
#include "storage_reader.h"
#include "storage_writer.h"
#include "sub_byte.h"
