// One register_*_ops function per ops/*.cc file. Explicit calls (instead of static registrars) so
// the linker cannot drop an op file from the static library.
#pragma once

namespace cmo::exec {

void register_elementwise_ops();
void register_reduce_ops();
void register_linalg_ops();
void register_conv_ops();
void register_norm_ops();
void register_shape_ops();
void register_gather_ops();
void register_image_ops();
void register_misc_ops();
void register_constexpr_ops();
void register_sort_ops();
void register_scatter_ops();
void register_rearrange_ops();
void register_recurrent_ops();
void register_list_ops();
void register_state_ops();
void register_resize_ops();
void register_spatial_ops();
void register_rnn_ops();
void register_quantize_ops();
void register_random_ops();
void register_extra_ops();

inline void register_all_ops() {
  register_elementwise_ops();
  register_reduce_ops();
  register_linalg_ops();
  register_conv_ops();
  register_norm_ops();
  register_shape_ops();
  register_gather_ops();
  register_image_ops();
  register_misc_ops();
  register_constexpr_ops();
  register_sort_ops();
  register_scatter_ops();
  register_rearrange_ops();
  register_recurrent_ops();
  register_list_ops();
  register_state_ops();
  register_resize_ops();
  register_spatial_ops();
  register_rnn_ops();
  register_quantize_ops();
  register_random_ops();
  register_extra_ops();
}

}  // namespace cmo::exec
