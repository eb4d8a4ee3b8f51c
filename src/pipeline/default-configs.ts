/**
 * What a models folder without pipeline.json (an apple/ml-stable-diffusion output) implies: the
 * scheduler configs of the published SD 1.5 and SDXL-base diffusers repos (scheduler_config.json,
 * without _class_name / _diffusers_version) and the VAEs' scaling factors.
 */
export const SD15_SCHEDULER = {
  className: 'PNDMScheduler',
  config: {
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    num_train_timesteps: 1000,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    trained_betas: null,
  },
} as const;

export const SDXL_BASE_SCHEDULER = {
  className: 'EulerDiscreteScheduler',
  config: {
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    clip_sample: false,
    interpolation_type: 'linear',
    num_train_timesteps: 1000,
    prediction_type: 'epsilon',
    sample_max_value: 1.0,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    timestep_spacing: 'leading',
    trained_betas: null,
    use_karras_sigmas: false,
  },
} as const;

/**
 * VAE scaling factors (AutoencoderKL config `scaling_factor`). SDXL's is 0.13025: ml-stable-diffusion's
 * Python pipeline divides by SD 1.x's 0.18215 for SDXL too (a bug, PR #300), which washes images out.
 */
export const SD15_VAE_SCALING_FACTOR = 0.18215;
export const SDXL_VAE_SCALING_FACTOR = 0.13025;
