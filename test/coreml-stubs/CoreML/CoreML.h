// Declarations-only stand-in for Apple's <CoreML/CoreML.h>, for type-checking native/coreml/*.mm on
// Linux (scripts/check-coreml-bridge.sh, clang -fsyntax-only against GNUstep Foundation). It holds
// only the Core ML API the bridge uses, with the signatures, enum values, availability and
// deprecations of Apple's headers (MLModel.h, MLModelConfiguration.h, MLMultiArray.h,
// MLFeatureValue.h, MLFeatureProvider.h, MLDictionaryFeatureProvider.h, MLFeatureDescription.h,
// MLModelDescription.h, MLMultiArrayConstraint.h, MLComputeUnits.h, MLFeatureType.h). Nothing here
// links or runs. Add a declaration here (copied from Apple's documentation) before using a new API.
#pragma once
#import <Foundation/Foundation.h>

#ifndef API_AVAILABLE
#define API_AVAILABLE(...)
#endif
#ifndef API_UNAVAILABLE
#define API_UNAVAILABLE(...)
#endif
#ifndef API_DEPRECATED
// A real attribute, even for Apple's "API_TO_BE_DEPRECATED" (no warning in the SDK yet): a call to
// an API on its way out must carry an explicit pragma and a reason.
#define API_DEPRECATED(msg, ...) __attribute__((deprecated(msg)))
#endif
#ifndef NS_REFINED_FOR_SWIFT
#define NS_REFINED_FOR_SWIFT
#endif
#ifndef NS_NOESCAPE
#define NS_NOESCAPE __attribute__((noescape))
#endif
#ifndef NS_RETURNS_INNER_POINTER
#define NS_RETURNS_INNER_POINTER
#endif
#ifndef ML_EXPORT
#define ML_EXPORT
#endif

NS_ASSUME_NONNULL_BEGIN

// MLComputeUnits.h
typedef NS_ENUM(NSInteger, MLComputeUnits) {
  MLComputeUnitsCPUOnly = 0,
  MLComputeUnitsCPUAndGPU = 1,
  MLComputeUnitsAll = 2,
  MLComputeUnitsCPUAndNeuralEngine API_AVAILABLE(macos(13.0), ios(16.0)) = 3
} API_AVAILABLE(macos(10.14), ios(12.0));

// MLFeatureType.h
typedef NS_ENUM(NSInteger, MLFeatureType) {
  MLFeatureTypeInvalid = 0,
  MLFeatureTypeInt64 = 1,
  MLFeatureTypeDouble = 2,
  MLFeatureTypeString = 3,
  MLFeatureTypeImage = 4,
  MLFeatureTypeMultiArray = 5,
  MLFeatureTypeDictionary = 6,
  MLFeatureTypeSequence API_AVAILABLE(macos(10.14), ios(12.0)) = 7,
  MLFeatureTypeState API_AVAILABLE(macos(15.0), ios(18.0)) = 8,
} API_AVAILABLE(macos(10.13), ios(11.0));

// MLMultiArray.h
typedef NS_ENUM(NSInteger, MLMultiArrayDataType) {
  MLMultiArrayDataTypeDouble = 0x10000 | 64,
  MLMultiArrayDataTypeFloat64 API_AVAILABLE(macos(11.0), ios(14.0)) = 0x10000 | 64,
  MLMultiArrayDataTypeFloat32 = 0x10000 | 32,
  MLMultiArrayDataTypeFloat16 API_AVAILABLE(macos(12.0), ios(16.0)) = 0x10000 | 16,
  MLMultiArrayDataTypeFloat API_AVAILABLE(macos(11.0), ios(14.0)) = 0x10000 | 32,
  MLMultiArrayDataTypeInt32 = 0x20000 | 32,
} API_AVAILABLE(macos(10.13), ios(11.0));

API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLMultiArray : NSObject
@property (readonly, nonatomic) void *dataPointer NS_RETURNS_INNER_POINTER API_DEPRECATED("Use getBytesWithHandler or getMutableBytesWithHandler instead.", macos(10.13, API_TO_BE_DEPRECATED));
@property (readonly, nonatomic) MLMultiArrayDataType dataType;
@property (readonly, nonatomic) NSArray<NSNumber *> *shape;
@property (readonly, nonatomic) NSArray<NSNumber *> *strides;
@property (readonly, nonatomic) NSInteger count;
@end

@interface MLMultiArray (Creation)
- (nullable instancetype)initWithShape:(NSArray<NSNumber *> *)shape
                              dataType:(MLMultiArrayDataType)dataType
                                 error:(NSError **)error;
- (nullable instancetype)initWithDataPointer:(void *)dataPointer
                                       shape:(NSArray<NSNumber *> *)shape
                                    dataType:(MLMultiArrayDataType)dataType
                                     strides:(NSArray<NSNumber *> *)strides
                                 deallocator:(void (^_Nullable)(void *bytes))deallocator
                                       error:(NSError **)error;
@end

@interface MLMultiArray (ScopedBufferAccess)
- (void)getBytesWithHandler:(void (NS_NOESCAPE ^)(const void *bytes, NSInteger size))handler API_AVAILABLE(macos(12.3), ios(15.4)) NS_REFINED_FOR_SWIFT;
- (void)getMutableBytesWithHandler:(void (NS_NOESCAPE ^)(void *mutableBytes, NSInteger size, NSArray<NSNumber *> *strides))handler API_AVAILABLE(macos(12.3), ios(15.4)) NS_REFINED_FOR_SWIFT;
@end

// MLMultiArrayConstraint.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLMultiArrayConstraint : NSObject
@property (readonly, nonatomic) NSArray<NSNumber *> *shape;
@property (readonly, nonatomic) MLMultiArrayDataType dataType;
@end

// MLFeatureDescription.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLFeatureDescription : NSObject <NSCopying>
@property (readonly, nonatomic, copy) NSString *name;
@property (readonly, nonatomic) MLFeatureType type;
@property (readonly, getter=isOptional, nonatomic) BOOL optional;
@property (readonly, nullable, nonatomic) MLMultiArrayConstraint *multiArrayConstraint;
@end

// MLModelDescription.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLModelDescription : NSObject
@property (readonly, nonatomic) NSDictionary<NSString *, MLFeatureDescription *> *inputDescriptionsByName;
@property (readonly, nonatomic) NSDictionary<NSString *, MLFeatureDescription *> *outputDescriptionsByName;
@end

// MLFeatureValue.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLFeatureValue : NSObject <NSCopying>
@property (readonly, nonatomic) MLFeatureType type;
@property (readonly, nullable, nonatomic) MLMultiArray *multiArrayValue;
+ (instancetype)featureValueWithMultiArray:(MLMultiArray *)value;
@end

// MLFeatureProvider.h
API_AVAILABLE(macos(10.13), ios(11.0))
@protocol MLFeatureProvider
@property (readonly, nonatomic) NSSet<NSString *> *featureNames;
- (nullable MLFeatureValue *)featureValueForName:(NSString *)featureName;
@end

// MLDictionaryFeatureProvider.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLDictionaryFeatureProvider : NSObject <MLFeatureProvider>
@property (readonly, nonatomic) NSDictionary<NSString *, MLFeatureValue *> *dictionary;
- (nullable instancetype)initWithDictionary:(NSDictionary<NSString *, id> *)dictionary error:(NSError **)error;
@end

// MLModelConfiguration.h
API_AVAILABLE(macos(10.14), ios(12.0))
ML_EXPORT
@interface MLModelConfiguration : NSObject <NSCopying>
@property (readwrite) MLComputeUnits computeUnits;
@end

// MLModel.h
API_AVAILABLE(macos(10.13), ios(11.0))
ML_EXPORT
@interface MLModel : NSObject
@property (readonly, nonatomic) MLModelDescription *modelDescription;
@property (readonly, nonatomic) MLModelConfiguration *configuration API_AVAILABLE(macos(10.14), ios(12.0));
+ (nullable instancetype)modelWithContentsOfURL:(NSURL *)url
                                  configuration:(MLModelConfiguration *)configuration
                                          error:(NSError **)error API_AVAILABLE(macos(10.14), ios(12.0));
- (nullable id<MLFeatureProvider>)predictionFromFeatures:(id<MLFeatureProvider>)input
                                                   error:(NSError **)error;
@end

@interface MLModel (MLModelCompilation)
+ (nullable NSURL *)compileModelAtURL:(NSURL *)modelURL
                                error:(NSError **)error
    API_DEPRECATED("Use the asynchronous interface compileModelAtURL:completionHandler:error: instead.", macos(10.13, API_TO_BE_DEPRECATED), ios(11.0, API_TO_BE_DEPRECATED));
@end

NS_ASSUME_NONNULL_END
